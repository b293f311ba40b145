"""Wire types generated from proto/. Only the server and agent transports import these."""
