// ding-dong (npm) sending the same commands as agi-server, one round trip
// each, then closing: the Node 20 peer of bench/run_benchmarks.py.
//
//   node bench/node/dingdong_server.js PORT SCRIPT COMMANDS.json
//
// ding-dong's own start() is net.createServer(handle).listen(port, host)
// with Node's default backlog (511); it is done the same way here with the
// backlog the Python servers get (4096), so 2,000 simultaneous connects
// do not overflow the accept queue of one system only.
"use strict";
const fs = require("fs");
const net = require("net");
const Context = require("ding-dong/lib/context");

const [port, script, commandsFile] = process.argv.slice(2);
const commands = JSON.parse(fs.readFileSync(commandsFile, "utf8"));

async function handler(context) {
  const vars = await context.onEvent("variables");
  if (vars.agi_network_script === script) {
    for (const command of commands) {
      await context.sendCommand(command);
    }
  }
  await context.end();
}

const server = net.createServer((stream) => {
  const context = new Context(stream, { debug: false, logger: undefined });
  context.on("error", () => {});
  handler(context).catch(() => context.end());
});
server.listen({ port: Number(port), host: "127.0.0.1", backlog: 4096 }, () => {
  console.log(`ding-dong listening on ${port}`);
});
