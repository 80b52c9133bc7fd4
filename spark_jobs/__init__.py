"""PySpark DataFrame jobs of the lakehouse, run through Spark Connect (Apache Spark 4.1 with
Delta Lake 4.3; locally the stack's ``spark`` service)."""
