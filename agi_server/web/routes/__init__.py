"""The API's routers, one file per topic; each is made by a function that
takes exactly the collaborators it uses (store, AMI client, config
sections), so nothing here reaches for a global."""
