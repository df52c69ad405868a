"""The data lead's dashboard: the figures no other domain's endpoint gives (funnel, work, people)."""
