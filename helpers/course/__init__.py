"""helpers.course — the tools that build the course itself (not imported by the chapters' arithmetic).

    helpers.course.notebooks    re-execute notebooks in place so committed outputs match the code
                                (``python -m helpers.course.notebooks``, ``make notebooks``)
    helpers.course.site         render the committed notebooks into a static site
                                (``python -m helpers.course.site --out _site``, ``make site``)
    helpers.course.site_search  the site's offline search: the index written at build time (+ site_search.js)
    helpers.course.site_mathjax the site's local MathJax: found on this machine, the part the pages load copied
    helpers.course.cookbook     notebook 99's table: every layer's formula and shape rule, proven vs torch
                                (a package: the rows are data in cookbook/entries.py, one job per module)
    helpers.course.diagrams     block diagrams with tensor shapes (chapters 06, 08, 10), drawn by matplotlib

Nothing here is imported by ``import helpers``; each module is imported by name.
"""
