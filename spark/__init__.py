"""``--engine spark``: the counting and the candidate search on Spark (optional extra ``[spark]``)."""
