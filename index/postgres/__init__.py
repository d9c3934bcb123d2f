"""The PostgreSQL + pgvector backend (the ``postgres`` extra): the index in a database that
any number of API processes share. ``backend.py`` writes and opens, ``reader.py``
searches, ``generation.py`` holds a generation's tables, ``schema.py`` the migrations,
``embedded.py`` the database ``akhbar db start`` runs."""
