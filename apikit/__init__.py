"""What the hub's two JSON APIs share: /v2 (the RunPod-compatible job API, jobs/) and
/api/v1 (events and webhook management, api/). One error type and its JSON shape
(errors.py), one token auth (auth.py), one strict body reader with one size policy
(bodies.py, jsonbody.py), and the handlers that make a NinjaAPI answer every refusal
as that JSON (handlers.py). Where the APIs word a refusal differently (RunPod's words
on /v2), the difference is data: a `Wording` each API hands to the kit."""
