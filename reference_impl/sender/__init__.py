"""The sending side: provider settings, campaigns with X-CleverTap_META, errors, the demo."""
