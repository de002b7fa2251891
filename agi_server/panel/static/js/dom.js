// Building the DOM without HTML strings: every value from the API goes in
// as a text node or an attribute, never as markup to parse.

/** h('button', {class: 'x', onclick: fn, 'aria-label': '...'}, 'text', child, ...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'text') el.textContent = String(value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'hidden' || key === 'disabled' || key === 'required' || key === 'selected' || key === 'checked') {
      el[key] = Boolean(value);
    } else if (key === 'value') el.value = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/**
 * Keep `container`'s children in step with `items` by key: an element is
 * made once (`create(item)`) and updated in place (`update(el, item)`), so
 * focus and open <audio> players survive live updates.
 */
export function keyed(container, items, key, create, update) {
  const old = new Map();
  for (const el of Array.from(container.children)) {
    if (el.dataset.key !== undefined) old.set(el.dataset.key, el);
    else container.removeChild(el);
  }
  let previous = null;
  for (const item of items) {
    const k = String(key(item));
    let el = old.get(k);
    if (el) old.delete(k);
    else {
      el = create(item);
      el.dataset.key = k;
    }
    update(el, item);
    const wanted = previous ? previous.nextSibling : container.firstChild;
    if (el !== wanted) container.insertBefore(el, wanted);
    previous = el;
  }
  for (const el of old.values()) el.remove();
}

/** Run `fn` at most once per animation frame. */
export function throttled(fn) {
  let pending = false;
  return (...args) => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fn(...args);
    });
  };
}
