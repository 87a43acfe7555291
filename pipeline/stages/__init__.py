"""The stages, one function each: export -> calibrate -> build -> profile."""
