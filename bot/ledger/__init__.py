"""The ledger: customers, contacts and invoices as imported from a CSV, an accounting source or a CRM; their aging and status."""
