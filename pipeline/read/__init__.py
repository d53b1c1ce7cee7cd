"""Bytes to the form's raw cells with their addresses: screening, the spreadsheet readers, and the
isolated reader pool they run in."""
