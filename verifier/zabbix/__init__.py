"""Zabbix: the item keys, the generated template, the values of a report, the sender with its spool,
and the API setup (template import, host, macros)."""
