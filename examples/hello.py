"""Hello world: run a function on an endpoint and print its result.

    python examples/hello.py

With nothing configured, faas uses the embedded default: a store and a queue under ~/.faas
(FAAS_HOME moves them) and an endpoint named `local`, started on demand in the background
(stop it with `faas endpoint stop local`). Pass endpoint="mysite" to run on a real site.
"""
import faas


def hello_name(name):
    return f"Hello, {name}!"


with faas.Executor() as ex:
    future = ex.submit(hello_name, "you")
    print(future.result())
