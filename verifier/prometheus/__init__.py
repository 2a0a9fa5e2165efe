"""Prometheus beside Zabbix: the values a report sends to Zabbix, as metrics in a textfile for
node_exporter's textfile collector (see docs/prometheus.md)."""
