"""``indoorseg app``: a local web page where a model segments the user's photos and videos
(``server``: the HTTP server and its API; ``page.html``: the page)."""
