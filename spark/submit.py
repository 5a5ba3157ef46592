"""The file to give ``spark-submit``: the recs CLI, run as the submitted Python driver.

    spark-submit --master yarn --deploy-mode client --conf spark.sql.shuffle.partitions=1000 \\
        "$(python -c 'import recs.spark.submit as m; print(m.__file__)')" \\
        train-embeddings /shared/logs --engine spark --out /shared/models/m

Without ``--spark-master``, ``--engine spark`` then runs on the master and with the settings given to
spark-submit (``recs.spark.session``); recs must be installed where the executors' Python is.
"""

from recs.cli.main import main

if __name__ == "__main__":
    main()
