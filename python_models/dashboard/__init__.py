"""The BI dashboard (`uba dashboard`): a Dash app over the published copy. `data` reads one
panel each, `figures` draws them (Plotly), `app` lays out the pages and serves the Data Docs."""
