"""What builds the documentation site (``docs/``, MkDocs Material) beyond its hand-written pages.

    hooks              the MkDocs hooks: figure macros in pages, the generated reference pages
    figures            ``{{ fig ... }}`` / ``{{ setting ... }}`` macros, and the scan for figures typed by hand
    cli_reference      the ``mpt`` command line, walked from ``mpt_cli.main.build_parser()``
    settings_reference the ``MPT_*`` settings, walked from the pydantic settings models
    concept_figure     the SVG of ``P_k = P* ∘ (u vᵀ)`` on the concepts page (``python -m docsite.concept_figure``)

Measured figures live in ``bench/results/*.json``; their tables are ``bench.tables``'.
"""
