"""The training engine: many short trainings of one architecture, data resident on the device."""
