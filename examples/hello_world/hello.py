"""The smallest pipeline's steps: a greeting, and a count of its letters."""


def greet(name: str = "world") -> str:
    message = f"Hello, {name}!"
    print(message)
    return message


def count_letters(greeting: str) -> int:
    return sum(c.isalpha() for c in greeting)
