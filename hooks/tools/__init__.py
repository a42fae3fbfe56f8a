"""The operators' tools: admin pages and forms, dashboard and stats, redelivery and
replay, test pings, history retention and a local receiver."""
