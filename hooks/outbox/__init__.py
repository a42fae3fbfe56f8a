"""What runs in the caller's transaction: `emit()` validates an event, writes it with a
delivery per subscriber (fan-out), and hands the deliveries to the broker once the
transaction commits."""
