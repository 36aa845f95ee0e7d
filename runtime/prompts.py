"""Prompts shared by the benchmarks, the demo and the tests: code continuations for the stdlib
pair, chat for smollm2."""

CODE_PROMPTS = [
    "def fibonacci(n):\n",
    "import os\nimport sys\n\n\ndef main():\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n",
    "    for i in range(len(items)):\n",
    "# Copyright (c) Python Software Foundation\n",
    "    if not isinstance(value, str):\n        raise TypeError(",
    "def _read(path, encoding='utf-8'):\n    with open(path",
    "return self._cache.get(key, default)\n",
    'class Error(Exception):\n    """Base class for',
    "def __repr__(self):\n        return",
    "    @property\n    def name(self):\n",
    "try:\n    import _thread\nexcept ImportError:\n",
    "__all__ = [",
    '    def close(self):\n        """Close the',
    "if __name__ == '__main__':\n",
    "    while True:\n        line = f.readline()\n",
    "def parse_args(argv=None):\n    parser = argparse.ArgumentParser(",
    "        except KeyError:\n            raise",
    "    def __init__(self, *args, **kwargs):\n        super().__init__(",
    "# The following functions",
    "    return '\\n'.join(lines)\n\n\ndef ",
    "_sentinel = object()\n\n\n",
    "    assert isinstance(",
    "    with self._lock:\n",
]

# Instruction prompts for the smollm2 profile (chat; each is one user message). Hand-written: none
# is among the prompts the smollm2 draft was distilled on (models/instruct_prompts.py).
CHAT_PROMPTS = [
    "What is the capital of France?",
    "Give me three tips for staying focused while studying.",
    "Explain how a rainbow forms.",
    "Write a short poem about autumn leaves.",
    "What are the benefits of drinking water?",
    "How do I make a cup of tea?",
    "Describe a cat to someone who has never seen one.",
    "What is the difference between a planet and a star?",
    "Suggest a name for a bakery and explain why.",
    "Why do we have day and night?",
    "List four healthy breakfast ideas.",
    "Explain what a computer program is.",
    "Write a thank-you note to a teacher.",
    "What should I pack for a weekend trip to the beach?",
    "How does a bicycle work?",
    "Why do birds sing in the morning?",
    "Give me a simple recipe for pancakes.",
    "Why is reading books good for you?",
    "Explain the rules of tic-tac-toe.",
    "What are some ways to reduce stress?",
]
