"""Mail: composing the report and unit messages, MIME, and SMTP delivery with a total deadline."""
