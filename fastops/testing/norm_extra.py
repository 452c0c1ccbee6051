"""Op table entries for local_response_norm and l2_normalize."""
TABLE = []
