"""The message pipeline's rules: `events` plans what a booking change sends,
`render` turns an outbox row into an SMS or an e-mail, `delivery` decides what
a provider's answer or a delivery receipt does to it.  The worker
(`service.worker`) is only the conveyor that calls them."""
