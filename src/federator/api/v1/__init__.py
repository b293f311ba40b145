"""Generated wire types (see proto/federator/v1)."""
