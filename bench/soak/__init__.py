"""A soak of a real ``ipmock serve --chaos``: minutes of mixed client load, memory and FDs
watched. ``options`` holds the options, tally, figures and report; ``load`` the clients;
``judge`` the /proc readings and the verdict; ``run`` the run and its command line
(``python -m bench.soak``, bench/README.md). ``bench.soak_shared`` runs it in the shared
modes (Redis, workers).
"""
