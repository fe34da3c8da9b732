"""Where an audit's work runs, and with what share of the machine: today the server's local worker processes."""
