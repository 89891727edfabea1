-- A destination its far end gave up on (a webhook answering 410 Gone) is disabled: it is
-- unconfirmed again, so nothing new is queued for it, and this says why, for its owner's
-- destinations page. Confirming it again clears it.
ALTER TABLE destinations ADD COLUMN disabled_reason TEXT;
