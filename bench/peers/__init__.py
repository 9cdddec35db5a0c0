"""ipmock side by side with its peers, Prism and WireMock: same workload, same ``wrk``.

``inputs`` makes what the peers serve (Prism's document, WireMock's mappings), ``install``
puts the pinned peers in bench/.peers/ with npm, ``servers`` says how each server starts,
``checks`` tests their answers before measuring, ``load`` measures with ``wrk`` and judges
the goal, ``cli`` runs it all and prints the report: ``python -m bench.peers``
(bench/README.md). package.json and package-lock.json here pin the peers' versions.
"""
