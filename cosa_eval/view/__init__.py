"""The run explorer (``cosa-eval view``): every response of one or more judged runs in one
self-contained HTML page, with each judge's verdicts and rationale, filters, a disagreements view
and adjudication exported as human labels.

``sources`` reads judged folders, ``rationale`` finds each verdict's judge text in the cache,
``data`` builds the page's JSON, ``page`` writes the HTML around ``explorer.js``/``explorer.css``.
"""
