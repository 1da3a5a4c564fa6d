/*
 * musicgraph dashboard: plain script, no build step. Reads the GraphQL API of the server that
 * served it (HTTP POST for the first state, graphql-transport-ws subscriptions for what changes):
 *   - health of the store and each outside API: `health`, then `apiHealth`;
 *   - enrichment: `enrichmentQueues`, then `enrichmentProgress`;
 *   - with a user token: `me` and `recommendations`, then `listenRecorded` and
 *     `recommendationsUpdated`.
 * Everything is written with textContent: nothing the server sends is parsed as HTML.
 */
(function () {
  "use strict";

  var ENDPOINT = "/graphql";
  var WS_URL = window.location.origin.replace(/^http/, "ws") + ENDPOINT;
  var TOKEN_KEY = "musicgraph.token";
  var SHOWN = 10;

  var HEALTH = "name kind status breakerState requests errors cacheHits latencyP95Ms lastError";
  var QUEUE = "source pending done failed skipped";
  var ITEM =
    "item { __typename ... on Track { id title artists { name } } ... on Artist { id name } }";
  var RECS = "items { score " + ITEM + " reasons { evidence } }";
  var LISTEN = "listenedAt source track { title artists { name } }";

  // --- small helpers -----------------------------------------------------------------------------

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (var name in attrs || {}) node.setAttribute(name, attrs[name]);
    return node;
  }

  function row(cells) {
    var tr = el("tr");
    cells.forEach(function (cell) {
      tr.appendChild(cell);
    });
    return tr;
  }

  function num(value, digits) {
    if (value === null || value === undefined) return el("td", "–", { class: "num" });
    var text = digits === undefined ? String(value) : Number(value).toFixed(digits);
    return el("td", text, { class: "num" });
  }

  function artists(track) {
    return (track.artists || []).map(function (a) {
      return a.name;
    }).join(", ");
  }

  function describe(item) {
    if (!item) return "(gone)";
    if (item.__typename === "Track") return artists(item) + " – " + item.title;
    return item.name;
  }

  function time(seconds) {
    return new Date(seconds * 1000).toLocaleString();
  }

  function fill(tbody, rows, empty) {
    tbody.replaceChildren.apply(tbody, rows.length ? rows : [row([el("td", empty, { colspan: 8 })])]);
  }

  /** POST one operation; resolves to `data`, rejects with the server's own words. */
  function query(text, variables, token) {
    var headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(ENDPOINT, {
      method: "POST",
      headers: headers,
      body: JSON.stringify({ query: text, variables: variables || {} }),
    }).then(function (response) {
      return response.json().then(
        function (body) {
          if (body.errors && body.errors.length) {
            throw new Error(body.errors.map(function (e) { return e.message; }).join("; "));
          }
          if (!response.ok) throw new Error("the server answered " + response.status);
          return body.data;
        },
        function () {
          throw new Error("the server answered " + response.status + " without JSON");
        }
      );
    });
  }

  /**
   * Subscribe, and subscribe again whenever the server ends the subscription (it does when it shuts
   * down; the client reconnects to the next one and the page keeps following). Returns a function
   * that stops it for good.
   */
  function subscribe(client, text, variables, onData, onError) {
    var stopped = false;
    var unsubscribe = function () {};
    function start() {
      unsubscribe = client.subscribe(
        { query: text, variables: variables || {} },
        {
          next: function (result) {
            if (result.errors && result.errors.length) {
              onError(new Error(result.errors.map(function (e) { return e.message; }).join("; ")));
            } else if (result.data) {
              onData(result.data);
            }
          },
          error: function (error) {
            onError(error instanceof Error ? error : new Error(reasonOf(error)));
          },
          complete: function () {
            if (!stopped) {
              setTimeout(function () {
                if (!stopped) start();
              }, 1000);
            }
          },
        }
      );
    }
    start();
    return function () {
      stopped = true;
      unsubscribe();
    };
  }

  function reasonOf(error) {
    if (error && error.reason) return error.reason + " (close code " + error.code + ")";
    if (Array.isArray(error)) return error.map(function (e) { return e.message; }).join("; ");
    return "the connection failed";
  }

  // --- health ------------------------------------------------------------------------------------

  function renderHealth(sources) {
    var sorted = sources.slice().sort(function (a, b) {
      // the store first, then the outside APIs by name
      return (a.kind === "store" ? "0" : "1") + a.name < (b.kind === "store" ? "0" : "1") + b.name
        ? -1
        : 1;
    });
    fill(
      $("health").tBodies[0],
      sorted.map(function (h) {
        return row([
          el("th", h.name, { scope: "row", "data-service": h.name }),
          el("td", h.status, { class: "status", "data-status": h.status }),
          el("td", h.breakerState),
          num(h.requests),
          num(h.errors),
          num(h.cacheHits),
          num(h.latencyP95Ms, 1),
          el("td", h.lastError || "", { class: "error" }),
        ]);
      }),
      "The server reports no services."
    );
    $("health-updated").textContent = "Updated " + new Date().toLocaleTimeString();
  }

  // --- enrichment ----------------------------------------------------------------------------------

  var enrichment = {}; // source -> {pending, done, failed, skipped, state, rate, note}

  function renderEnrichment() {
    var names = Object.keys(enrichment).sort();
    fill(
      $("enrichment").tBodies[0],
      names.map(function (name) {
        var e = enrichment[name];
        return row([
          el("th", name, { scope: "row", "data-source": name }),
          el("td", e.state || "–"),
          num(e.pending),
          num(e.done),
          num(e.failed),
          num(e.skipped),
          num(e.rate, 2),
          el("td", e.note || ""),
        ]);
      }),
      "No enrichment sources yet."
    );
  }

  function applyQueue(queue) {
    var e = enrichment[queue.source] || (enrichment[queue.source] = {});
    e.pending = queue.pending;
    e.done = queue.done;
    e.failed = queue.failed;
    e.skipped = queue.skipped;
  }

  function applyProgress(p) {
    applyQueue(p.totals);
    var e = enrichment[p.source];
    e.state = p.state;
    e.rate = p.rate;
    var eta = p.etaSeconds ? "about " + Math.ceil(p.etaSeconds) + " s left" : "";
    e.note = [p.reason, eta].filter(Boolean).join("; ");
    renderEnrichment();
  }

  // --- live connection for everyone ----------------------------------------------------------------

  function setConnection(state, text) {
    var node = $("connection");
    node.dataset.state = state;
    node.textContent = "Live updates: " + text;
  }

  var live = graphqlWs.createClient({
    url: WS_URL,
    lazy: false,
    retryAttempts: Infinity,
    shouldRetry: function () {
      return true;
    },
    on: {
      connecting: function () {
        setConnection("connecting", "connecting…");
      },
      connected: function () {
        setConnection("open", "on");
      },
      closed: function () {
        setConnection("closed", "off, reconnecting…");
      },
    },
  });

  function showHealthError(error) {
    $("health-updated").textContent = "Could not read the health: " + error.message;
  }

  query("{ health { " + HEALTH + " } enrichmentQueues { " + QUEUE + " } }")
    .then(function (data) {
      renderHealth(data.health);
      data.enrichmentQueues.forEach(applyQueue);
      renderEnrichment();
    })
    .catch(showHealthError);

  subscribe(live, "subscription { apiHealth { " + HEALTH + " } }", null, function (data) {
    renderHealth(data.apiHealth);
    $("health").dataset.live = "yes"; // the subscription answers: changes will show
  }, showHealthError);

  subscribe(
    live,
    "subscription { enrichmentProgress { source state rate etaSeconds reason totals { " +
      QUEUE + " } } }",
    null,
    function (data) {
      applyProgress(data.enrichmentProgress);
    },
    function (error) {
      $("health-updated").textContent = "Enrichment updates stopped: " + error.message;
    }
  );

  // --- the user's own view -----------------------------------------------------------------------------

  var personal = null; // the WebSocket client signed in with the token
  var personalStops = []; // its subscriptions

  function closePersonal() {
    personalStops.forEach(function (stop) {
      stop();
    });
    personalStops = [];
    if (personal) personal.dispose();
    personal = null;
  }

  function meStatus(text) {
    $("me-status").textContent = text;
  }

  function renderRecommendations(result) {
    var list = $("recommendations");
    if (result.message) {
      list.replaceChildren(el("li", result.message));
      return;
    }
    var items = result.items.map(function (r) {
      var li = el("li", describe(r.item));
      li.appendChild(el("span", "score " + r.score.toFixed(2) + (
        r.reasons.length ? " · " + r.reasons[0].evidence : ""), { class: "why" }));
      return li;
    });
    list.replaceChildren.apply(list, items.length ? items : [el("li", "Nothing to recommend yet.")]);
  }

  function listenItem(listen) {
    var li = el("li", artists(listen.track) + " – " + listen.track.title);
    li.appendChild(el("span", time(listen.listenedAt) + " · " + listen.source, { class: "why" }));
    return li;
  }

  var listenCount = null;

  function showCount() {
    $("listen-count").textContent =
      listenCount === null ? "" : listenCount + (listenCount === 1 ? " listen" : " listens") + " in all";
  }

  function addListen(listen) {
    if (listenCount !== null) {
      listenCount += 1;
      showCount();
    }
    var list = $("listens");
    if (list.dataset.empty) {
      list.replaceChildren();
      delete list.dataset.empty;
    }
    list.insertBefore(listenItem(listen), list.firstChild);
    while (list.children.length > SHOWN) list.removeChild(list.lastChild);
  }

  function signOut() {
    closePersonal();
    sessionStorage.removeItem(TOKEN_KEY);
    $("me").hidden = true;
    $("forget").hidden = true;
    $("token").value = "";
    $("me-title").textContent = "Your listening";
    meStatus("");
  }

  function signIn(token) {
    closePersonal();
    meStatus("Loading…");
    query(
      "query Me($n: Int!) { me { name listenCount listens(first: $n) { nodes { " + LISTEN + " } } }" +
        " recommendations(limit: $n) { ... on RecommendationList { " + RECS + " }" +
        " ... on Error { message } } }",
      { n: SHOWN },
      token
    )
      .then(function (data) {
        if (!data.me) throw new Error("this token belongs to no user (the admin token has no listening)");
        sessionStorage.setItem(TOKEN_KEY, token);
        $("me-title").textContent = "Listening of " + data.me.name;
        listenCount = data.me.listenCount;
        showCount();
        var listens = (data.me.listens && data.me.listens.nodes) || [];
        var list = $("listens");
        list.replaceChildren.apply(list, listens.map(listenItem));
        if (!listens.length) {
          list.replaceChildren(el("li", "No listens yet."));
          list.dataset.empty = "1";
        }
        renderRecommendations(data.recommendations);
        $("me").hidden = false;
        $("forget").hidden = false;
        meStatus("Signed in as " + data.me.name + "; new listens and recommendations appear here as they happen.");
        personal = graphqlWs.createClient({
          url: WS_URL,
          connectionParams: { authorization: "Bearer " + token },
          retryAttempts: Infinity,
          shouldRetry: function (event) {
            return !(event && event.code === 4403); // a refused token stays refused
          },
        });
        var failed = function (error) {
          meStatus("Live updates stopped: " + error.message);
        };
        personalStops = [
          subscribe(personal, "subscription { listenRecorded { " + LISTEN + " } }", null,
            function (d) {
              addListen(d.listenRecorded);
            }, failed),
          subscribe(personal,
            "subscription Recs($n: Int!) { recommendationsUpdated(limit: $n) { " + RECS + " } }",
            { n: SHOWN },
            function (d) {
              renderRecommendations(d.recommendationsUpdated);
            }, failed),
        ];
      })
      .catch(function (error) {
        sessionStorage.removeItem(TOKEN_KEY);
        $("me").hidden = true;
        meStatus("Could not sign in: " + error.message);
      });
  }

  $("token-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var token = $("token").value.trim();
    if (token) signIn(token);
  });
  $("forget").addEventListener("click", signOut);

  var saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    $("token").value = saved;
    signIn(saved);
  }
})();
