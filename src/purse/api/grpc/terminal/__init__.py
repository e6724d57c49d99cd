"""TerminalService: the servicer and the mapping of its receipts, transactions and
customers."""
