"""Op table: tensor arithmetic (OPS.md "Tensor arithmetic")."""

TABLE = []
