"""Parses an OpenMetrics exposition with the Python prometheus_client's strict parser (an
independent check of what hub-metrics encodes) and prints its samples as JSON.

Usage: python3 metrics.py < exposition.txt
       python3 metrics.py http://127.0.0.1:PORT/metrics   (also checks the Content-Type)

Output: {"types": {family: type}, "samples": [[name, {label: value}, value], ...]}.
Exits 1 with the parser's message on stderr if the text is not valid OpenMetrics.
"""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def read():
    if len(sys.argv) < 2:
        return sys.stdin.read()
    import httpx

    response = httpx.get(sys.argv[1], timeout=10)
    response.raise_for_status()
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith("application/openmetrics-text"):
        raise ValueError(f"Content-Type {content_type!r} is not OpenMetrics text")
    return response.text


def main():
    text = read()
    types = {}
    samples = []
    for family in text_string_to_metric_families(text):
        if family.name in types:
            raise ValueError(f"family {family.name} appears twice")
        types[family.name] = family.type
        for sample in family.samples:
            samples.append([sample.name, dict(sample.labels), sample.value])
    json.dump({"types": types, "samples": samples}, sys.stdout)


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # the message is the test's failure
        print(f"metrics.py: {error!r}", file=sys.stderr)
        sys.exit(1)
