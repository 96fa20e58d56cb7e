"""Pure physics of TARE planning: numbers in, frozen dataclasses out, no I/O."""
