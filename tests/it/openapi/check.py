#!/usr/bin/env python3
"""The contract test's validator (tests/it/openapi/contract.rs runs it).

Usage: openapi_check.py DOCUMENT.json EXCHANGES.json

The document must be a valid OpenAPI 3.1 document (openapi-spec-validator), and each
exchange's body must validate (jsonschema, Draft 2020-12, strict: no field the schema
does not declare) against the schema the document gives its route, method, status and
media type, with every declared response header present. Exchanges marked "mutant" are
broken on purpose and must fail. Prints {"checked": N, "failures": [...]} as JSON.
"""
import copy, json, sys, urllib.parse
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate as validate_document
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

document = json.load(open(sys.argv[1]))
exchanges = json.load(open(sys.argv[2]))
validate_document(document)

def tighten(node):
    # Strict: an object may carry only the fields its schema declares.
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            tighten(value)
    elif isinstance(node, list):
        for value in node:
            tighten(value)

strict = copy.deepcopy(document)
tighten(strict)
URI = "urn:scorekeeper:openapi"
registry = Registry().with_resource(URI, Resource.from_contents(strict, default_specification=DRAFT202012))

def pointer(*parts):
    escaped = [str(part).replace("~", "~0").replace("/", "~1") for part in parts]
    return URI + "#/" + urllib.parse.quote("/".join(escaped), safe="/~")

def essence(media):
    return media.split(";")[0].strip().lower()

def problems(exchange):
    route, method, status = exchange["route"], exchange["method"], str(exchange["status"])
    media = essence(exchange["headers"].get("content-type", ""))
    if route is None:
        ref = URI + "#/components/schemas/ErrorBody"
    else:
        response = document["paths"].get(route, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            return [f"status {status} is not declared"]
        missing = [name for name in response.get("headers", {}) if name.lower() not in exchange["headers"]]
        if missing:
            return [f"declared headers missing: {missing}"]
        keys = [key for key in response.get("content", {}) if essence(key) == media]
        if not keys:
            return [f"media type {media!r} is not declared"]
        ref = pointer("paths", route, method, "responses", status, "content", keys[0], "schema")
    if media != "application/json":
        return []
    try:
        body = json.loads(exchange["body"])
    except ValueError as error:
        return [f"not JSON: {error}"]
    validator = Draft202012Validator({"$ref": ref}, registry=registry, format_checker=FormatChecker())
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(body)]

failures, checked = [], 0
for exchange in exchanges:
    found = problems(exchange)
    checked += 1
    what = f"{exchange['method']} {exchange['path']} {exchange['status']}"
    if exchange["mutant"] and not found:
        failures.append(f"mutant passed: {what}: {exchange['body'][:300]}")
    elif not exchange["mutant"] and found:
        failures.append(f"{what}: {found[:5]} in {exchange['body'][:500]}")
print(json.dumps({"checked": checked, "failures": failures}))
