"""Human-facing views of dfstream's results: HTML reports and the terminal timeline."""
