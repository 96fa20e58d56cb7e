"""Case and plan files: parsing, validation, records and atomic writing."""
