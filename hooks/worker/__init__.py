"""What runs in the django-q2 worker: the pump schedules attempts (claims, sender
threads, per-endpoint bounds); each attempt is built and sent, then recorded and its
next step decided (retry, health); the sweeper is the safety net."""
