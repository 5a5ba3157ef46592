"""``recs serve``: the recommendations of one index over HTTP (optional extra ``[serve]``)."""
