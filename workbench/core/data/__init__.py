"""CoLA and user data: loading, splitting, fetching, describing."""
