"""One outgoing HTTP request, built and sent without touching the database: the body
(payload, data template or chat message), headers and signatures, the SSRF guard and
the transport."""
