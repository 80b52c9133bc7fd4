"""The warehouse: gold days staged under the lake and loaded into PostgreSQL or Redshift."""
