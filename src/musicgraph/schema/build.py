"""The schema, with its limits: depth, aliases, tokens, introspection and masked errors.

Errors that are part of the contract (GraphQL validation, :class:`PublicError` for bad arguments)
reach the client as they are. Anything else is an unexpected failure: the client sees only
"Unexpected error." and the request id (also in the ``X-Request-ID`` header); the log gets the
exception with its traceback under the same request id.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import ASTValidationRule
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

from musicgraph.logging import get_logger
from musicgraph.schema.context import Context, PublicError
from musicgraph.schema.execution import (
    FastLeafExecutionContext,
    install_direct_resolvers,
    install_prefetched,
)
from musicgraph.schema.mutation import Mutation
from musicgraph.schema.query import Query
from musicgraph.schema.subscription import Subscription
from musicgraph.schema.types.errors import ERROR_TYPES
from musicgraph.settings import Settings

log = get_logger("musicgraph.api")

MASKED_MESSAGE = "Unexpected error."


def is_unexpected(error: GraphQLError) -> bool:
    """True for errors a client must not see: anything raised that is not meant for it."""
    original = error.original_error
    return original is not None and not isinstance(original, (PublicError, GraphQLError))


class MaskUnexpectedErrors(MaskErrors):
    """``MaskErrors`` that tells the client the request id to quote (the log has the details)."""

    def _process_result(self, result: object) -> None:
        # MaskErrors asks isinstance() of a runtime-checkable Protocol, which inspects the
        # result's attributes one by one on every request; reading ``errors`` is the same test.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        context = getattr(self, "execution_context", None)
        request_id = getattr(getattr(context, "context", None), "request_id", None)
        return GraphQLError(
            message=self.error_message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions={"requestId": request_id} if request_id else None,
        )


class CachedNameConverter(NameConverter):
    """Strawberry converts each argument's Python name to its GraphQL name on every call of a
    resolver with arguments; the names are the schema's, so each is converted once."""

    def __init__(self) -> None:
        super().__init__()
        self._names: dict[str, str] = {}

    def apply_naming_config(self, name: str) -> str:
        found = self._names.get(name)
        if found is None:
            found = self._names[name] = super().apply_naming_config(name)
        return found


class ApiPolicy(MaskUnexpectedErrors):
    """The API's per-operation rules in one extension (Strawberry runs every extension's hooks
    through a chain of context managers per phase, a fixed cost on every request):

    - limits: at most ``max_tokens`` tokens (what ``MaxTokensLimiter`` does) and the depth and
      alias rules (``AddValidationRules``);
    - each document parsed once (``ParserCache``: the same LRU of ``parse`` by text and
      options) and validated once, keyed by the parsed document's identity: Strawberry's
      ``ValidationCache`` memoises on the document's hash, and graphql-core hashes a document by
      walking all of its nodes (tens of microseconds a request); the entry holds the document
      weakly, so a dropped document's entry goes and its id can be reused safely;
    - operations over one WebSocket share its context: each gets its own DataLoader cache, so a
      query after a mutation on the same connection reads what the mutation wrote;
    - unexpected errors masked (:class:`MaskUnexpectedErrors`)."""

    def __init__(
        self,
        *,
        max_tokens: int,
        rules: tuple[type[ASTValidationRule], ...],
        validated: dict[int, Any],
        maxsize: int = 512,
    ) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message=MASKED_MESSAGE)
        self.max_tokens = max_tokens
        self.rules = rules
        self.validated = validated
        self.maxsize = maxsize
        self.parse = _get_parse_cache(maxsize)

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        context.validation_rules = context.validation_rules + self.rules
        own = context.context
        if isinstance(own, Context) and own.long_lived:
            own.renew_loaders()
        yield from super().on_operation()

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.graphql_document = self.parse(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is None:  # pragma: no cover - parsing failed; nothing to validate
            yield
            return
        rules = tuple(context.validation_rules)
        key = id(document)
        cache = self.validated
        found = cache.get(key)
        if found is not None and found[0]() is document and found[1] == rules:
            errors = found[2]
        else:
            errors = validate_document(context.schema._schema, document, rules)
            if len(cache) >= self.maxsize:
                cache.pop(next(iter(cache)))

            def forget(ref: weakref.ref[Any], key: int = key) -> None:
                entry = cache.get(key)
                if entry is not None and entry[0] is ref:
                    del cache[key]

            cache[key] = (weakref.ref(document, forget), rules, errors)
        context.pre_execution_errors = errors
        yield


class MusicgraphSchema(strawberry.Schema):
    """Logs every error where it happened, before ``MaskErrors`` hides the unexpected ones."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        context = execution_context.context if execution_context is not None else None
        request_id = getattr(context, "request_id", None)
        for error in errors:
            path = ".".join(str(p) for p in error.path or ())
            if is_unexpected(error):
                original = error.original_error
                log.error(
                    "graphql resolver failed",
                    request_id=request_id,
                    path=path or None,
                    error=repr(original),
                    exc_info=(type(original), original, original.__traceback__)
                    if original is not None
                    else None,
                )
            else:
                log.info(
                    "graphql request refused",
                    request_id=request_id,
                    path=path or None,
                    error=error.message,
                )


def build_schema(settings: Settings) -> MusicgraphSchema:
    # Factories, not instances: strawberry gives each operation its own extension objects, so
    # concurrent requests never share one's execution context.
    # The depth and alias rules are built once and shared: strawberry's validation cache is keyed
    # by the rule classes, and a limiter instance per request would mint new ones every time.
    limits = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    extensions: list[Callable[[], SchemaExtension]] = [
        partial(ApiPolicy, max_tokens=settings.max_tokens, rules=tuple(limits), validated={}),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    schema = MusicgraphSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=list(ERROR_TYPES),
        extensions=extensions,
        execution_context_class=FastLeafExecutionContext,
        config=StrawberryConfig(name_converter=CachedNameConverter()),
    )
    install_direct_resolvers(schema)
    install_prefetched(schema._schema)
    return schema


def schema_sdl(settings: Settings | None = None) -> str:
    return str(build_schema(settings or Settings.from_env(env_file=None)))
