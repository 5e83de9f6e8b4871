"""Decision policies: which outreach action to take next for a contact, learned from recorded outcomes."""
