"""webhookhub's delivery engine. Other apps import only what is named here."""

__version__ = "0.1.0"
__all__ = ["emit", "send_now", "register_event_type", "UnknownEventType", "__version__"]


def emit(event_type, payload, **scope):
    """Record an event and its deliveries in the caller's transaction; see hooks.outbox.emit."""
    from hooks.outbox import emit as _emit

    return _emit(event_type, payload, **scope)


def send_now(event_type, payload, **options):
    """Deliver an event synchronously, once (blocking hooks); see hooks.outbox.send_now."""
    from hooks.outbox import send_now as _send_now

    return _send_now(event_type, payload, **options)


def register_event_type(name, description, **options):
    """Add an event type to the catalog (call from an AppConfig.ready)."""
    from hooks.catalog import register

    return register(name, description, **options)


def __getattr__(name):
    if name == "UnknownEventType":
        from hooks.catalog import UnknownEventType

        return UnknownEventType
    raise AttributeError(name)
