"""PySpark DataFrame jobs of the lakehouse, run through Spark Connect (pysail locally)."""
