"""Notifications to customers: texts, delivery providers and the outbox dispatcher.

Messages are written to `outbox_messages` in the same database transaction as what they
announce; `dispatcher.OutboxDispatcher` sends them later through a `providers.Provider`
(the console in development, an HTTP webhook to an SMS/push gateway in production).
"""
