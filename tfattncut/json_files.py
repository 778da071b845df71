"""Reading the JSON files tfattncut writes (a run's config.json, study scores, evaluation
reports): one that is damaged (cut short by a copy between machines, edited by hand) is one
error naming the file and what to do, not a JSONDecodeError traceback."""
import json


def read_object(path, remedy):
    """The JSON object in the file PATH; a ValueError naming PATH and `remedy` if the file
    holds anything else."""
    with open(path) as f:
        try:
            value = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON ({error}); {remedy}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} holds a JSON {type(value).__name__}, not an object; {remedy}")
    return value
