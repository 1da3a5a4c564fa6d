/*
 * musicgraph's GraphiQL page: start-up script (loaded after React, ReactDOM, graphql-ws, GraphiQL
 * and the explorer plugin, all served by this server).
 *
 * Queries and mutations go over HTTP POST with the headers of the Headers tab. Subscriptions go
 * over a WebSocket (graphql-transport-ws); browsers cannot set headers on a WebSocket, so the
 * Headers tab's Authorization travels in the connection_init payload instead, which is where the
 * server reads it. A new Authorization opens a new WebSocket.
 */
(function () {
  "use strict";

  var EXAMPLE_QUERY = [
    "# musicgraph GraphiQL",
    "#",
    "# Run: Ctrl-Enter (or the play button). Complete: Ctrl-Space.",
    "#",
    "# To act as a user, open Headers below and enter",
    '#   {"Authorization": "Bearer <your token>"}',
    "# (tokens come from `musicgraph users`); it is sent with queries and",
    "# with subscriptions alike.",
    "",
    "query Health {",
    "  health {",
    "    name",
    "    status",
    "  }",
    "}",
    "",
    "subscription ApiHealth {",
    "  apiHealth {",
    "    name",
    "    status",
    "  }",
    "}",
    "",
  ].join("\n");

  var url = window.location.origin + window.location.pathname;
  var wsUrl = url.replace(/^http/, "ws");
  var parameters = new URLSearchParams(window.location.search);

  function authorizationOf(headers) {
    for (var key in headers) {
      if (Object.prototype.hasOwnProperty.call(headers, key) && key.toLowerCase() === "authorization") {
        return String(headers[key]);
      }
    }
    return "";
  }

  // One WebSocket client at a time, for the Authorization it was opened with.
  var current = null;

  function fetcherFor(authorization) {
    if (current !== null && current.authorization === authorization) {
      return current.fetcher;
    }
    if (current !== null) {
      current.client.dispose();
    }
    var client = graphqlWs.createClient({
      url: wsUrl,
      lazy: true,
      connectionParams: authorization ? { authorization: authorization } : {},
    });
    current = {
      authorization: authorization,
      client: client,
      fetcher: GraphiQL.createFetcher({ url: url, wsClient: client }),
    };
    return current.fetcher;
  }

  function fetcher(params, options) {
    var headers = (options && options.headers) || {};
    return fetcherFor(authorizationOf(headers))(params, options);
  }

  // Keep the query and variables in the address, so a page can be shared (never the headers:
  // they hold tokens).
  function remember(key, value) {
    if (value) {
      parameters.set(key, value);
    } else {
      parameters.delete(key);
    }
    var search = parameters.toString();
    history.replaceState(null, "", search ? "?" + search : window.location.pathname);
  }

  function App() {
    var query = React.useState(parameters.get("query") || EXAMPLE_QUERY);
    var variables = React.useState(parameters.get("variables") || undefined);
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
      query: query[0],
      variables: variables[0],
      onEditQuery: function (value) {
        query[1](value);
        remember("query", value);
      },
      onEditVariables: function (value) {
        variables[1](value);
        remember("variables", value);
      },
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(App));
})();
